"""qc's passes, one per file; each is data (name + options) plus a ``run``."""

from .base import ModulePass, Option, PassState
from .outline_weights import OutlineWeights
from .raise_linear import RaiseLinear
from .conv_to_matmul import ConvToMatmul
from .pool_channels_last import PoolChannelsLast
from .winograd import Winograd
from .collapse_elementwise import CollapseElementwise
from .gpu_map import GpuMap
from .gpu_buffers import GpuBuffers
from .gpu_linear import GpuLinear
from .gpu_reduce import GpuReduce
from .gpu_attention import GpuAttention
from .gpu_shared_allocs import GpuSharedAllocs
from .expand_math import ExpandMath
from .isolate_contractions import IsolateContractions
from .fold_widening import FoldWidening
from .fuse_into_transposes import FuseIntoTransposes
from .lower_linear import LowerLinear
from .microkernels import Microkernels
from .weights_to_args import WeightsToArgs
from .instrument import Instrument
from .quantize_weights import QuantizeWeights
from .fuse_dequant_gemm import FuseDequantGemm
from .lower_qgemm import LowerQGemm
from .smooth import Smooth
from .reassociate_reductions import ReassociateReductions
from .parallelize import Parallelize
from .merge_dispatches import MergeDispatches
from .elide_copies import ElideCopies
from .early_deallocs import EarlyDeallocs
from .strided_copies import StridedCopies
from .noalias_args import NoaliasArgs
from .serial_loops import SerialLoops
from .small_loops import SmallLoops
from .strip_probes import StripProbes
from .assign_schemes import AssignSchemes
from .select_precision import SelectPrecision
from .quantize_embeddings import QuantizeEmbeddings
from .checks_to_errors import ChecksToErrors
from .fuse_cached_attention import FuseCachedAttention

REGISTRY: dict[str, type[ModulePass]] = {
    p.NAME: p for p in (OutlineWeights, RaiseLinear, IsolateContractions, LowerLinear, WeightsToArgs, Microkernels,
                        ExpandMath, ConvToMatmul, Instrument, QuantizeWeights, FuseDequantGemm, LowerQGemm,
                        Smooth, ReassociateReductions, Parallelize, MergeDispatches, ElideCopies, EarlyDeallocs, StridedCopies,
                        NoaliasArgs, SerialLoops, SmallLoops, StripProbes, AssignSchemes, SelectPrecision,
                        QuantizeEmbeddings, FuseCachedAttention,
                        ChecksToErrors, FoldWidening, FuseIntoTransposes, PoolChannelsLast, Winograd, CollapseElementwise, GpuMap, GpuBuffers,
                        GpuLinear, GpuReduce, GpuSharedAllocs, GpuAttention)
}

__all__ = ["ModulePass", "Option", "PassState", "REGISTRY"]
