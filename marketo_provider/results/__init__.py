"""Results of an import: per-batch statuses summed up, and the failure and warning files of all
parts merged into one file each (one header, the reason column last, the job's format), published
to object storage or XCom.

``merging``     :func:`merge_result_files`: a kind of result file merged over the parts, each row
                traced to its source line when the import can trace it; reasons counted
``location``    :class:`ResultsLocation`: ``results_path`` and its connection, checked writable
                before the first upload
``summary``     :class:`ImportSummary`: the XCom ``return_value``, the reasons an import must fail
``publishing``  :func:`publish_results`: the merged files written or pushed to XCom
"""

from marketo_provider.results.location import ResultsLocation, result_file_name, write_to_object_storage
from marketo_provider.results.merging import (
    OTHER_REASONS,
    REASON_CHARS,
    REASONS_COUNTED,
    REASONS_KEPT,
    SOURCE_COLUMNS,
    Finder,
    MergedFile,
    ResultFileSource,
    Trace,
    merge_result_files,
)
from marketo_provider.results.publishing import (
    XCOM_MAX_RESULT_BYTES,
    XCOM_WARN_BYTES,
    publish,
    publish_results,
)
from marketo_provider.results.summary import ImportSummary

__all__ = [
    "OTHER_REASONS",
    "REASONS_COUNTED",
    "REASONS_KEPT",
    "REASON_CHARS",
    "SOURCE_COLUMNS",
    "XCOM_MAX_RESULT_BYTES",
    "XCOM_WARN_BYTES",
    "Finder",
    "ImportSummary",
    "MergedFile",
    "ResultFileSource",
    "ResultsLocation",
    "Trace",
    "merge_result_files",
    "publish",
    "publish_results",
    "result_file_name",
    "write_to_object_storage",
]
