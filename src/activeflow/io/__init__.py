"""Files: NetCDF through xarray with provenance, Equinox models with their specs, CSV tables and
figures, all written atomically. The public names are re-exported here (`from activeflow import io`)."""

from activeflow.io.files import atomic_path, git_revision, provenance, save_figure, write_csv
from activeflow.io.models import load_evaluation_inputs, load_model, save_model
from activeflow.io.netcdf import check_samples, differences, read_netcdf, stage_info, write_netcdf

__all__ = ["atomic_path", "check_samples", "differences", "git_revision", "load_evaluation_inputs", "load_model",
           "provenance", "read_netcdf", "save_figure", "save_model", "stage_info", "write_csv", "write_netcdf"]
