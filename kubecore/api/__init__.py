"""The Kubernetes API as data: no network, no files, no clocks beyond timestamps.

Object types (`types`), the pydantic models that check shapes (`models`), the kinds the cluster
serves with their defaults and validation (`resources`, `validation`), label and field selectors,
the patch formats, deletion propagation words, `Status` errors, and the wire formats shared by
the API server and its clients (`jsonwire`, `remotecommand`).
"""
