"""CF-style labels of a store's arrays: what ``xarray.open_zarr(STORE)`` shows.

A format-4 store gives every array Zarr v3 ``dimension_names`` (the field of
the array metadata that xarray reads as the variable's dimensions) and the
attributes of the CF conventions (https://cfconventions.org, section 3):
``long_name``, ``units`` (``"1"`` for a dimensionless quantity; both families
are posed without units on the unit square) and a ``description`` of what
the values are. The grid coordinates are 1-D arrays named like their
dimensions (``x``, ``y``), which xarray makes index coordinates; so are the
labels of the small axes (``param``, ``component``).

Dimension names used: ``sample`` (one row per sample), ``y`` (rows of an
image), ``x`` (columns), ``component`` (of a vector field), ``param`` (of a
sample's parameter vector), and for the store's own bookkeeping ``chunk``,
``array`` and ``digest_byte`` (the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The dimension of the samples: axis 0 of every per-sample array.
SAMPLE = "sample"
#: The dimensions of the manifest (:mod:`pde_data.manifest`): a row per chunk, a digest per per-sample array.
MANIFEST_DIMS = ("chunk", "array", "digest_byte")
#: An image's dimensions: ``array[row, col]`` = value at ``(x[col], y[row])``.
IMAGE = ("y", "x")


@dataclass(frozen=True)
class Variable:
    """How one array of a store is labelled.

    ``dims``: the dimension names of one sample (per-sample arrays, without
    :data:`SAMPLE`) or of the whole array (once-per-store arrays).
    """

    dims: tuple[str, ...]
    long_name: str
    units: str = "1"
    description: str = ""

    def attributes(self) -> dict[str, str]:
        """The array's CF-style attributes."""
        attrs = {"long_name": self.long_name, "units": self.units}
        if self.description:
            attrs["description"] = self.description
        return attrs


#: The ``done`` array (one flag per sample).
DONE = Variable((), "sample is written", description="True once the sample's chunk is written (data, then its "
                "manifest row, then this flag); the other arrays hold fill values for samples not done")
#: The ``manifest`` array.
MANIFEST = Variable(MANIFEST_DIMS, "chunk digests", description="row k: for each per-sample array (attribute "
                    "'arrays'), blake2b-128 of store id | array | chunk index | dtype | shape | values of chunk k")


def grid_axis(axis: str, where: str) -> Variable:
    """The 1-D coordinate ``x`` or ``y`` of the image columns or rows; ``where``: grid points or cell centres."""
    return Variable((axis,), f"{axis} coordinate of the {where}", description=f"{axis} of the {where} of the "
                    f"unit square; image column index = x index, row index = y index")


def dimension_names(variables: dict[str, Variable], name: str, ndim: int, per_sample: bool) -> tuple[str, ...]:
    """The Zarr ``dimension_names`` of array ``name`` with ``ndim`` axes (generic ones where ``variables`` has no
    entry for it, so that every array is named)."""
    lead = (SAMPLE,) if per_sample else ()
    own = variables[name].dims if name in variables else tuple(f"{name}_dim_{i}" for i in range(ndim - len(lead)))
    dims = (*lead, *own)
    if len(dims) != ndim:
        raise ValueError(f"array {name!r}: {ndim} axes, labelled with {len(dims)} dimension names {dims}")
    return dims


def attributes(variables: dict[str, Variable], name: str) -> dict[str, str]:
    """The CF-style attributes of array ``name`` (none where ``variables`` has no entry for it)."""
    return variables[name].attributes() if name in variables else {}
