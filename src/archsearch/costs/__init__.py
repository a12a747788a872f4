"""What a network costs, counted, measured or predicted.

- :mod:`~archsearch.costs.metrics`: parameters, multiply-adds and peak memory, and :func:`measure` for all of them;
- :mod:`~archsearch.costs.runtime`: latency measured on PyTorch eager, TorchScript or ONNX Runtime (the one clock
  every latency in archsearch is timed with);
- :mod:`~archsearch.costs.lookup`: latency predicted by adding up a space's blocks from a measured table;
- :mod:`~archsearch.costs.device_model`: latency on a device archsearch cannot run on, fitted to a few timed networks.
"""

from archsearch.costs.metrics import (
    Cost,
    count_flops,
    count_params,
    measure,
    measure_latency,
    measure_peak_mb,
    peak_memory_mb,
)

__all__ = ["Cost", "count_flops", "count_params", "measure", "measure_latency", "measure_peak_mb", "peak_memory_mb"]
