"""Device and precision resolution, shared by the embedders and the estimators."""

import contextlib

import torch

from .exceptions import DeviceUnavailableError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device`` into a
    ``torch.device``, failing clearly when the hardware is absent."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceUnavailableError(
            f"device={device!r} is not a device torch understands ({exc}). "
            "Use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device={device!r} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
                "Use device='auto' to fall back to the CPU, or install a CUDA build of torch."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible."
            )
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise DeviceUnavailableError(
            f"device={device!r} was requested but MPS is not available. Use device='auto'."
        )
    return resolved


def resolve_precision(device, precision):
    """The autocast dtype for ``precision`` on ``device``, or None for full fp32.

    ``"auto"`` means bf16 on GPUs that support it, fp16 on other GPUs, fp32 on the CPU.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


# Convolutions run fastest on channels-last tensors on these devices, measured for
# EfficientNet-Lite0 on 2 CPU cores: a batch of 32 at 224 px in 0.56 s instead of 1.17 s
# (inference), an AdamW step on 16 images in 0.67 s instead of 1.06 s. On CUDA it is
# what cuDNN's tensor-core kernels want. MPS keeps the default layout.
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


def image_memory_format(device):
    """The memory format for image networks and their inputs on ``device``."""
    return torch.channels_last if device.type in CHANNELS_LAST_DEVICES else torch.contiguous_format


def place_image_model(module, device):
    """Move ``module`` to ``device`` in the fastest memory format there (conv weights only)."""
    return module.to(device=device, memory_format=image_memory_format(device))


def autocast(device, dtype):
    """An autocast context for ``dtype``; None: full fp32 (on CUDA without TF32, which cuDNN
    uses for fp32 convolutions by default and which differed from the CPU's fp32 by up to
    1 % of an EfficientNet feature on an H200)."""
    if dtype is not None:
        return torch.autocast(device_type=device.type, dtype=dtype)
    if device.type == "cuda":
        return _exact_fp32()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _exact_fp32():
    """IEEE fp32 matrix products and convolutions for the block, then the user's settings."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    previous = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = previous


@contextlib.contextmanager
def fast_kernels(device):
    """cuDNN autotuning for the block (fixed input sizes make it pay off), then the user's
    setting back. Left off when the user asked cuDNN for deterministic kernels."""
    cudnn = torch.backends.cudnn
    if device.type != "cuda" or cudnn.deterministic:
        yield
        return
    previous = cudnn.benchmark
    cudnn.benchmark = True
    try:
        yield
    finally:
        cudnn.benchmark = previous


@contextlib.contextmanager
def seeded_rng(seed):
    """Run the block with torch's RNGs (CPU and every CUDA device) seeded with ``seed``,
    then restore them: the caller's global random state is neither used nor changed."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def is_out_of_memory(exc):
    """True for the errors that mean 'this batch did not fit on the device'."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
