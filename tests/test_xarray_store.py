"""Stores open in xarray as labelled Datasets: dimension names, coordinates, CF-style units (store format 4)."""

import warnings

import numpy as np
import pytest
import zarr

from pde_data.generate import generate  # before dolfinx: orders MPI
from pde_data.store import STORE_FORMAT, StoreError, StoreReader, summary
from store_samples import generate_on_ranks

xr = pytest.importorskip("xarray")

DARCY = {"n": 8, "samples": 12, "chunk": 4, "seed": 0, "length": 0.2}


def open_quietly(path) -> "xr.Dataset":
    """``xarray.open_zarr(path)`` as a user calls it; any warning (e.g. no consolidated metadata) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path)


def check_labelled(ds, reader: StoreReader) -> None:
    """Every array of the store is a variable with its own dimension names; grid coordinates, units, values."""
    group = reader.group
    assert set(ds.variables) == set(group.array_keys())
    for name in ds.variables:
        assert ds[name].dims == group[name].metadata.dimension_names, name
        assert not any("dim_" in d for d in ds[name].dims), name
    for name in ds.data_vars:
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    for name in reader.record["sample_arrays"]:
        assert ds[name].dims[0] == "sample" and ds[name].attrs["description"], name
        np.testing.assert_array_equal(ds[name].values, reader.read(name, np.arange(reader.n_total)), err_msg=name)
    assert {"x", "y"} <= set(ds.indexes)
    n = ds.sizes["x"]
    grid_x, grid_y = reader.grid(n)
    np.testing.assert_array_equal(np.broadcast_to(ds.x.values, (n, n)), grid_x)
    np.testing.assert_array_equal(np.broadcast_to(ds.y.values[:, None], (n, n)), grid_y)
    assert ds.x.attrs["units"] == "1" and "x coordinate" in ds.x.attrs["long_name"]
    assert ds.attrs["pde_data"]["store_format"] == STORE_FORMAT == reader.record["store_format"]


def test_poisson_store_opens_as_a_labelled_dataset(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    generate("poisson", out, write_params(), progress=False)
    ds = open_quietly(out)
    check_labelled(ds, StoreReader(out))
    assert ds.u.dims == ("sample", "y", "x") and ds.flux.dims == ("sample", "component", "y", "x")
    assert list(ds.param.values) == ["kx", "ky", "ax", "ay", "alpha"] and list(ds.component.values) == ["x", "y"]
    assert ds.theta.sel(param="alpha").shape == (12,)
    assert ds.u.sel(x=0.0).max() == 0.0  # u = 0 on the boundary x = 0: the coordinate selects the column
    assert ds.done.all() and ds.attrs["generation"]["samples"] == 12


def test_darcy_store_opens_as_a_labelled_dataset_and_info_shows_its_names(tmp_path, write_params, capsys):
    out = tmp_path / "d.zarr"
    generate("darcy", out, write_params("darcy", **DARCY), progress=False)
    ds = open_quietly(out)
    reader = StoreReader(out)
    check_labelled(ds, reader)
    assert ds.Q.dims == ("sample",) and ds.log_k.dims == ("sample", "y", "x")
    assert float(ds.x[0]) == pytest.approx(1 / 16)  # cell centres
    text = summary(out)
    for name in ds.variables:
        dims = ", ".join(f"{d}: {ds.sizes[d]}" for d in ds[name].dims)
        line = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert f"({dims})" in line and f"[{ds[name].attrs['units']}] {ds[name].attrs['long_name']}" in line, line


def test_resumed_store_still_opens_without_warnings(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    params = write_params()
    generate("poisson", out, params, progress=False)
    group = zarr.open_group(out, mode="r+")
    group["done"][4:8] = False
    assert generate("poisson", out, params, progress=False) == "resumed"  # writes chunks and the group attributes
    check_labelled(open_quietly(out), StoreReader(out))


def test_resuming_an_older_format_is_refused_in_one_line_and_overwrite_replaces_it(tmp_path, write_params):
    out = tmp_path / "p.zarr"
    params = write_params()
    generate("poisson", out, params, progress=False)
    group = zarr.open_group(out, mode="r+")
    group.attrs["pde_data"] = {**group.attrs["pde_data"], "store_format": 3}
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(StoreError, match="store format 3, written by an earlier pde_data.*--overwrite") as err:
        generate("poisson", out, params, progress=False)
    assert "\n" not in str(err.value)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert StoreReader(out).n_done == 12  # still read
    assert generate("poisson", out, params, progress=False, overwrite_changed=True) == "replaced"
    assert StoreReader(out).record["store_format"] == STORE_FORMAT


@pytest.mark.mpi
def test_store_written_by_two_ranks_opens_in_xarray_like_one_rank(tmp_path, write_params):
    stores = generate_on_ranks("poisson", tmp_path, write_params(samples=22, chunk=4))
    one, two = (open_quietly(stores[r]) for r in (1, 2))
    check_labelled(two, StoreReader(stores[2]))
    xr.testing.assert_identical(one.drop_vars("manifest").drop_attrs(), two.drop_vars("manifest").drop_attrs())
