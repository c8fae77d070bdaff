"""A software prefetch for the compiled loops that read rows at random (store.compiledscores): asks the CPU to
start fetching a row it will read a few steps later, so that several rows' memory reads are under way at once
instead of one after the other. Made only when numba is there (this module imports it: imported by
compiledtopk's compile step alone); a loop compiled without it reads the same numbers, later.

At 1M articles the window pairs' loop reads some 4,000 stored windows of 384 bytes a list, each at random: with
the window 8 rows ahead prefetched, 0.81 -> 0.58 ms a list with the codes held in memory, 1.03 -> 0.79 mapped
(/work/tmp-lead/s43/thp2.py: 200 lists of 1,000 articles' windows, the caches flushed between lists).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 64  # bytes a prefetch asks for (a cache line)


def _hint(context, builder, kind, ary, index, count):
    """Prefetch `count` elements of the array from its element at `index` (a tuple of indices), a line at a time."""
    first = cgutils.get_item_pointer(context, builder, kind, ary, index, wraparound=False)
    byte = ir.IntType(8).as_pointer()
    start = builder.bitcast(first, byte)
    size = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(kind.dtype)))
    int32 = ir.IntType(32)
    hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte, int32, int32, int32]),
                                          "llvm.prefetch.p0i8")
    zero = context.get_constant(types.intp, 0)
    with cgutils.for_range_slice(builder, zero, builder.mul(count, size), context.get_constant(types.intp, LINE)) \
            as (at, _):
        builder.call(hint, [builder.gep(start, [at]), int32(0), int32(3), int32(1)])  # read, every cache level, data


@intrinsic
def prefetch_row(typingctx, array, row):
    """Ask for every cache line of row `row` of the 2-D C-ordered `array` (a hint: no fault, no effect on results;
    the row must exist). Compiled code only."""
    if not isinstance(array, types.Array) or array.ndim != 2 or not isinstance(row, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        kind = signature.args[0]
        ary = context.make_array(kind)(context, builder, args[0])
        row_index = context.cast(builder, args[1], signature.args[1], types.intp)
        _hint(context, builder, kind, ary, [row_index, context.get_constant(types.intp, 0)],
              builder.extract_value(ary.shape, 1))
        return context.get_dummy_value()

    return types.void(array, row), codegen


@intrinsic
def prefetch_span(typingctx, array, start, count):
    """Ask for the cache lines of elements start..start+count-1 of the 1-D `array` (a hint; start must be an
    element of it, count >= 0). Compiled code only."""
    if not isinstance(array, types.Array) or array.ndim != 1 or not isinstance(start, types.Integer) \
            or not isinstance(count, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        kind = signature.args[0]
        ary = context.make_array(kind)(context, builder, args[0])
        first = context.cast(builder, args[1], signature.args[1], types.intp)
        _hint(context, builder, kind, ary, [first], context.cast(builder, args[2], signature.args[2], types.intp))
        return context.get_dummy_value()

    return types.void(array, start, count), codegen
