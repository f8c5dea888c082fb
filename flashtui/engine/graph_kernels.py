"""The GPU kernels one call launches, read from a CUDA-graph capture instead of CUPTI.

torch.profiler's first start in a process costs 4.9-5.8 s under CUPTI on the H200
(torch 2.11): the largest single cost of a bench's first cell. Capturing one call into a
CUDA graph runs no kernel and takes milliseconds, and the graph's kernel nodes name what
the call would have launched: ``cuGraphKernelNodeGetParams`` + ``cuFuncGetName``, read
here through the driver (ctypes, no extra package), the same calls PyTorch's own
``CUDAGraph.get_graph_data`` makes. Names are demangled like the profiler's.

``None`` means "could not tell", never "no kernels": no driver entry points, a torch
without ``keep_graph``, a call that cannot be captured (host syncs), or a kernel node
whose name the driver would not give. The caller then asks the profiler.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Callable

import torch

# CUgraphNodeType values (cuda.h): a kernel launch and a nested (child) graph.
_NODE_KERNEL, _NODE_CHILD_GRAPH = 0, 4
_MAX_DEPTH = 4  # child graphs inside child graphs: libraries nest one or two levels


class _KernelNodeParams(ctypes.Structure):
    """CUDA_KERNEL_NODE_PARAMS_v2 (cuda.h, CUDA >= 12.0); only ``func`` and ``kern`` are read."""

    _fields_ = [("func", ctypes.c_void_p),
                ("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("shared_mem_bytes", ctypes.c_uint),
                ("kernel_params", ctypes.c_void_p), ("extra", ctypes.c_void_p),
                ("kern", ctypes.c_void_p), ("ctx", ctypes.c_void_p)]


@functools.cache
def _driver() -> ctypes.CDLL | None:
    """libcuda with the entry points this module needs (None: no driver, or too old)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    needed = ("cuGraphGetNodes", "cuGraphNodeGetType", "cuGraphKernelNodeGetParams_v2",
              "cuGraphChildGraphNodeGetGraph", "cuFuncGetName")
    if not all(hasattr(lib, name) for name in needed):
        return None
    return lib


@functools.cache
def _demangler() -> tuple[Callable, Callable] | None:
    try:
        cxa = ctypes.CDLL("libstdc++.so.6").__cxa_demangle
        free = ctypes.CDLL(None).free
    except (OSError, AttributeError):
        return None
    cxa.restype = ctypes.c_void_p
    cxa.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    free.argtypes = [ctypes.c_void_p]
    return cxa, free


def demangle(name: str) -> str:
    """A C++ symbol as the profiler shows it ("void at::native::f<float>(float*)"); other names as given."""
    tools = _demangler()
    if tools is None or not name.startswith("_Z"):
        return name
    cxa, free = tools
    status = ctypes.c_int(-1)
    pointer = cxa(name.encode(), None, None, ctypes.byref(status))
    if not pointer:
        return name
    try:
        return ctypes.string_at(pointer).decode(errors="replace") if status.value == 0 else name
    finally:
        free(pointer)


class _Unnamed(Exception):
    """A driver call failed or a kernel had no name: the graph cannot be read fully."""


def _ok(result: int) -> None:
    if result != 0:
        raise _Unnamed(f"CUresult {result}")


def _kernel_name(lib: ctypes.CDLL, node: int) -> str:
    params = _KernelNodeParams()
    _ok(lib.cuGraphKernelNodeGetParams_v2(ctypes.c_void_p(node), ctypes.byref(params)))
    name = ctypes.c_char_p()
    if params.func and lib.cuFuncGetName(ctypes.byref(name), ctypes.c_void_p(params.func)) == 0 and name.value:
        return demangle(name.value.decode(errors="replace"))
    # A library kernel (cuLibraryGetKernel) may be recorded as a CUkernel only.
    if params.kern and hasattr(lib, "cuKernelGetName") and \
            lib.cuKernelGetName(ctypes.byref(name), ctypes.c_void_p(params.kern)) == 0 and name.value:
        return demangle(name.value.decode(errors="replace"))
    raise _Unnamed("a kernel node without a name")


def graph_kernel_names(lib: ctypes.CDLL, graph: int, depth: int = 0) -> list[str]:
    """Every kernel node's name in ``graph`` (a cudaGraph_t), child graphs included, in the
    order the driver lists the nodes (the capture order)."""
    count = ctypes.c_size_t(0)
    _ok(lib.cuGraphGetNodes(ctypes.c_void_p(graph), None, ctypes.byref(count)))
    nodes = (ctypes.c_void_p * max(count.value, 1))()
    _ok(lib.cuGraphGetNodes(ctypes.c_void_p(graph), nodes, ctypes.byref(count)))
    names: list[str] = []
    for node in nodes[: count.value]:
        kind = ctypes.c_int(-1)
        _ok(lib.cuGraphNodeGetType(ctypes.c_void_p(node), ctypes.byref(kind)))
        if kind.value == _NODE_KERNEL:
            names.append(_kernel_name(lib, node))
        elif kind.value == _NODE_CHILD_GRAPH and depth < _MAX_DEPTH:
            child = ctypes.c_void_p()
            _ok(lib.cuGraphChildGraphNodeGetGraph(ctypes.c_void_p(node), ctypes.byref(child)))
            names.extend(graph_kernel_names(lib, child.value or 0, depth + 1))
    return names


@functools.cache
def available() -> bool:
    """Whether kernels can be named from a capture here (a CUDA driver and torch's keep_graph)."""
    if not torch.cuda.is_available() or _driver() is None:
        return False
    try:
        torch.cuda.CUDAGraph(keep_graph=True)
    except TypeError:  # torch < 2.8 has no keep_graph
        return False
    return True


def captured_kernel_names(fn: Callable[[], object]) -> list[str] | None:
    """The names of the kernels one call of ``fn`` launches, from a capture (None: could not tell).

    ``fn`` must have run before (warm): the capture records, it does not execute, so lazy
    allocations and first-call compiles must already be done.
    """
    if not available():
        return None
    lib = _driver()
    graph = torch.cuda.CUDAGraph(keep_graph=True)  # no instantiation: nothing is uploaded
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(side):
            graph.capture_begin()
            try:
                fn()
            finally:
                graph.capture_end()
        return graph_kernel_names(lib, graph.raw_cuda_graph()) or None  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - capture refused or the graph unreadable: the profiler decides
        return None
    finally:
        torch.cuda.current_stream().wait_stream(side)
        del graph
        torch.cuda.synchronize()


__all__ = ["available", "captured_kernel_names", "demangle", "graph_kernel_names"]
