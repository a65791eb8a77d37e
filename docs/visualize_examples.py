"""Makes every picture of docs/visualize.md: trains a LeNet-5 on MNIST and a ResNet on Fashion-MNIST briefly,
with LayerHealth, then runs the `nnscratch` commands the page shows.

    python docs/visualize_examples.py          # from the repository root; about two minutes on two cores
    python docs/visualize_examples.py --skip-training   # only redraw, from the models in runs/

The models and their histories go to runs/ (not committed); the pictures to docs/images/.
"""
import os
import shlex
import sys
import time

from nnscratch.callbacks import LayerHealth, write_history_json
from nnscratch.cli import main
from nnscratch.data import to_float_images
from nnscratch.datasets import load_fashion_mnist, load_mnist
from nnscratch.datasets.fashion_mnist import CLASS_NAMES
from nnscratch.models import lenet5, resnet

#: exactly the commands on docs/visualize.md (tests/test_visualize_docs.py keeps the two in step)
COMMANDS = """\
nnscratch show runs/lenet5.h5 kernels -o docs/images/lenet5_kernels.png
nnscratch show runs/lenet5.h5 features --layer conv2d_1 --layer re_lu_2 --index 0 -o docs/images/lenet5_features.png
nnscratch show runs/lenet5.h5 saliency --index 0 -o docs/images/lenet5_saliency.png
nnscratch show runs/lenet5.h5 gradcam --index 0 -o docs/images/lenet5_gradcam.png
nnscratch show runs/lenet5.h5 gradcam --index 1 -o docs/images/lenet5_gradcam_2.png
nnscratch show runs/lenet5.h5 histograms --count 64 -o docs/images/lenet5_histograms.png
nnscratch plot runs/lenet5.history.json --health -o docs/images/lenet5_health.png
nnscratch show runs/resnet.h5 features --layer re_lu_1 --layer re_lu_7 --index 0 -o docs/images/resnet_features.png
nnscratch show runs/resnet.h5 saliency --index 0 -o docs/images/resnet_saliency.png
nnscratch show runs/resnet.h5 gradcam --index 0 -o docs/images/resnet_gradcam.png
nnscratch show runs/resnet.h5 gradcam --index 0 --class 9 -o docs/images/resnet_gradcam_boot.png
nnscratch show runs/resnet.h5 gradcam --index 0 --class 9 --layer re_lu_5 -o docs/images/resnet_gradcam_stage2.png
nnscratch show runs/resnet.h5 histograms --count 64 --layer conv2d_1 --layer batch_normalization_1 --layer add_3 --layer dense_1 -o docs/images/resnet_histograms.png
nnscratch plot runs/resnet.history.json --health -o docs/images/resnet_health.png
""".splitlines()

#: the ResNet-8 that docs/resnet.md's run trains for 10 epochs on all of Fashion-MNIST (92 % test accuracy),
#: saved as runs/resnet_fmnist.h5: too long to train here, so these run only when that file is present
LONG_RUN = "runs/resnet_fmnist.h5"
LONG_RUN_COMMANDS = """\
nnscratch show runs/resnet_fmnist.h5 gradcam --index 0 --dataset fashion-mnist -o docs/images/resnet92_gradcam.png
nnscratch show runs/resnet_fmnist.h5 gradcam --index 1 --dataset fashion-mnist -o docs/images/resnet92_gradcam_pullover.png
nnscratch show runs/resnet_fmnist.h5 saliency --index 1 --dataset fashion-mnist -o docs/images/resnet92_saliency_pullover.png
""".splitlines()


def train(name, model, data, class_names, dataset, epochs, limit):
    (x, y), (xt, yt) = data
    x, y, xt = to_float_images(x[:limit]), y[:limit], to_float_images(xt)
    model.metadata.update(dataset=dataset, preprocess={"scale": "unit", "pad_to": None}, class_names=class_names)
    t0 = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=2, callbacks=[LayerHealth(every=10)])
    accuracy = model.validate(xt, yt)["accuracy"]
    print(f"{name}: {limit} images x {epochs} epochs in {time.perf_counter() - t0:.0f} s, test accuracy "
          f"{100 * accuracy:.2f}%", flush=True)
    model.save(f"runs/{name}.h5")
    write_history_json(model, f"runs/{name}.history.json", meta={"test_accuracy": accuracy})


if __name__ == "__main__":
    os.makedirs("runs", exist_ok=True)
    os.makedirs("docs/images", exist_ok=True)
    if "--skip-training" not in sys.argv:
        train("lenet5", lenet5("modern", seed=0), load_mnist(), [str(d) for d in range(10)], "mnist", 3, 12000)
        train("resnet", resnet(blocks_per_stage=1, bn_momentum=0.9, seed=0), load_fashion_mnist(), list(CLASS_NAMES),
              "fashion-mnist", 2, 12000)
    commands = COMMANDS + (LONG_RUN_COMMANDS if os.path.exists(LONG_RUN) else [])
    if not os.path.exists(LONG_RUN):
        print(f"{LONG_RUN} not found: the pictures of the long ResNet run are left as they are")
    for command in commands:
        print(f"$ {command}", flush=True)
        if main(shlex.split(command)[1:]) != 0:
            sys.exit(f"failed: {command}")
