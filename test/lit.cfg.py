import os
import sys

import lit.formats

config.name = "qc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["python", "Inputs"]
# The tools come from the Python environment that runs lit.
bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = bindir + os.pathsep + config.environment.get("PATH", os.environ.get("PATH", ""))
config.substitutions.append(("FileCheck", "filecheck"))
