import os
import sys

# layer_configs.py sits beside the tests and is shared by several test modules
sys.path.insert(0, os.path.dirname(__file__))
