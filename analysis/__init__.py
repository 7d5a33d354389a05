"""Pure functions from run folders (results/<config>/runs/*) to tables, plots and the report."""
