from setuptools import find_packages, setup

setup(
    name="minibng",
    version="0.1.0",
    description="A small NumPy/CuPy deep-learning framework for the Block-Normalized Gradient method (arXiv 1707.04822)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minibng", "minibng.*"]),
    package_data={"minibng.gpu": ["*.cu", "*.cuh"]},   # the CUDA sources CuPy compiles at run time
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "tqdm", "matplotlib", "threadpoolctl>=3"],
    extras_require={
        "gpu": ["cupy-cuda12x>=13"],
        # nbclient, nbformat and ipykernel execute the notebooks of docs/notebooks/ (tests/test_notebooks.py).
        "test": ["pytest", "hypothesis", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6"],
        # NVRTC alone (no GPU needed): the tests compile every CUDA source as CuPy would (CI installs it).
        "nvrtc": ["nvidia-cuda-nvrtc-cu12"],
        # The coverage report of a CPU run that lists the GPU-only lines no CPU test reaches (bench/gpu_coverage.sh).
        "coverage": ["coverage>=7"],
        "bench": ["torch"],
        # The optimizer audit's PyTorch and optax sides (python -m minibng.audit --framework torch|optax, audit self).
        "audit": ["torch>=2.0", "optax>=0.2", "jax>=0.4"],
        # Data-parallel runs (mpiexec -n N): mpi4py and an MPI from the package index (the mpich wheel brings mpiexec).
        "mpi": ["mpi4py>=3.1", "mpich"],
        # The docs site: `mkdocs build --strict` (ruff only formats the API pages' signatures; mkdocs-jupyter executes
        # the notebooks of docs/notebooks/ in an IPython kernel at every build and renders them with their outputs).
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=1.0", "mkdocstrings-python>=2.0",
                 "pymdown-extensions>=10.0", "ruff>=0.5", "mkdocs-jupyter>=0.25", "ipykernel>=6"],
    },
    license="MIT",
)
