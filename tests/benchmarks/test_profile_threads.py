"""profile_threads times one thread on half a batch against two threads on the whole, span by span, and
puts every method it wrapped back afterwards."""
import importlib.util
import pathlib

SPEC = importlib.util.spec_from_file_location(
    "profile_threads", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "profile_threads.py")


def test_prints_the_spans_of_both_ways_and_unwraps_everything(capsys):
    profile_threads = importlib.util.module_from_spec(SPEC)
    SPEC.loader.exec_module(profile_threads)
    from nnscratch import model as model_module
    from nnscratch.engine import parallel, plan
    from nnscratch.layers.options import KerasOptions

    before = (model_module.Model.forward_backward, plan.Plan.forward, parallel.DataParallel.train_step,
              parallel.DataParallel._update_in_threads, KerasOptions.backward,
              model_module.optimizer_step)
    profile_threads.main(["mlp", "--steps", "2", "--rounds", "1"])
    after = (model_module.Model.forward_backward, plan.Plan.forward, parallel.DataParallel.train_step,
             parallel.DataParallel._update_in_threads, KerasOptions.backward,
             model_module.optimizer_step)
    assert after == before
    out = capsys.readouterr().out
    assert "1 thread, 64" in out and "2 thr: thread 1" in out
    for span in ("00 Dense forward", "chunk: forward_backward", "chunk: sum + optimizer range",
                 "serial: optimizer_step", "fit: whole step"):
        assert span in out, span
