"""Reports: requests, the worker that builds them, and one module per report type.

`service` is the use case (request, read, list, build); `base` what a report
type is; `registry.TYPES` the types offered; `output` the file formats. A new
type is one module exposing a `base.ReportType` and one line in the registry.
"""
