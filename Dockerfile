# PDE surrogate pipeline: DOLFINx data generation + PyTorch (FAS) training.
#   docker build -t pde-surrogate .
#   docker run --rm pde-surrogate                        # CPU: runs `dvc repro` on the default params
#   docker run --rm --gpus all pde-surrogate             # GPU: the PyPI torch wheel is the CUDA build
#   docker run --rm -v "$PWD":/work pde-surrogate        # run on (and keep results in) your own clone
# The full python:3.12 Debian image ships gcc (DOLFINx compiles its forms at run time) and git (DVC needs a repository).
FROM python:3.12-bookworm

WORKDIR /work
COPY . .
RUN pip install --no-cache-dir -c requirements.lock . \
 && git config --global --add safe.directory /work

CMD ["dvc", "repro"]
