#!/usr/bin/python3
"""Which kernels the PyTorch replica runs: torch version and build, intra-op threads, oneDNN (mkldnn), and the BLAS
library actually loaded with its OpenBLAS core and thread count. Run it with the same environment as the replica."""
import ctypes
import os

import torch

torch.set_num_threads(int(os.environ.get("NOPROP_THREADS", "2")))
a = torch.randn(256, 256)
(a @ a).sum()                                     # make sure BLAS is loaded
torch.nn.functional.conv2d(torch.randn(1, 1, 8, 8), torch.randn(2, 1, 3, 3))

print(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, "
      f"oneDNN (mkldnn) {'available' if torch.backends.mkldnn.is_available() else 'absent'}, "
      f"OpenMP {torch.backends.openmp.is_available()}")
config = torch.__config__.show()
for line in config.splitlines():
    if "CPU capability" in line:
        print("  " + line.strip().lstrip("- "))
    if "Build settings" in line:
        keep = [item.strip() for item in line.split(":", 1)[1].split(",")
                if item.strip().split("=")[0] in ("BLAS_INFO", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION")]
        print("  build: " + ", ".join(keep) + " (BLAS_INFO=generic: libblas.so.3, i.e. whichever BLAS Debian's alternatives select)")
blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and line.split()[-1].startswith("/")})
for path in blas:
    real = os.path.realpath(path)
    core = threads = ""
    try:
        lib = ctypes.CDLL(real)
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = " core " + lib.openblas_get_corename().decode()
            threads = f", {lib.openblas_get_num_threads()} BLAS thread(s)"
    except OSError:
        pass
    print(f"  BLAS loaded: {path} -> {real}{core}{threads}")
print(f"  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
      f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')} "
      f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')} "
      f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', '(unset)')}")
