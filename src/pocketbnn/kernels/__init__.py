"""numpy-facing binary kernels of the compiled core (no torch needed).

Bit-packing convention: values are packed along the last axis into 64-bit words
(``WORD_BITS``), value ``i`` to bit ``i % 64`` of word ``i // 64``, least significant bit
first; bit 1 means negative (sign(0) = +1); rows are padded with 0 bits.
"""

from pocketbnn.kernels.bconv2d import Bconv2d, BconvWeights, bconv2d, bdense, bitpacked_output_params
from pocketbnn.kernels.bitpack import WORD_BITS, pack_bits, packed_words, unpack_bits
from pocketbnn.kernels.bmaxpool import bmaxpool
from pocketbnn.kernels.epilogue import ChannelEpilogue, ChannelStage
from pocketbnn.kernels.isa import active_isa, available_isas, list_ukernels, selected_ukernel, set_isa, use_isa
from pocketbnn.kernels.threads import get_num_threads, set_num_threads

__all__ = [
    "WORD_BITS",
    "Bconv2d",
    "BconvWeights",
    "ChannelEpilogue",
    "ChannelStage",
    "active_isa",
    "available_isas",
    "bconv2d",
    "bdense",
    "bitpacked_output_params",
    "bmaxpool",
    "get_num_threads",
    "list_ukernels",
    "pack_bits",
    "packed_words",
    "selected_ukernel",
    "set_isa",
    "set_num_threads",
    "unpack_bits",
    "use_isa",
]
