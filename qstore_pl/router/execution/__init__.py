"""Running routed groups of circuits: the per-backend adapter, the serial and Dask
executors, and the packing that ships a group to a worker."""
