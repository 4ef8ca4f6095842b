"""The leading sizes of a tensor to reshape its last axis into, without reading the shape at run time."""

from keras import ops


def leading_shape(x):
    """The sizes of `x` before its last axis: `(-1,) + x.shape[1:-1]` when every size after the batch is
    known and non-zero, else the sizes read at run time.

    With a free batch (an exported graph), reading the shape is a Shape, a StridedSlice and a Pack, which an
    exported sampling loop runs at every pixel step for each reshape. A rank-1 `x` has no batch to leave
    free, and next to a size 0 a -1 is not inferable (JAX raises), so both read the shape.
    """
    after_batch = tuple(x.shape[1:])
    if len(x.shape) > 1 and all(size is not None and size > 0 for size in after_batch):
        return (-1,) + after_batch[:-1]
    return tuple(ops.shape(x)[:-1])
