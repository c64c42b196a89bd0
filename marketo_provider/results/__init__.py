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

from marketo_provider.results.location import ResultsLocation
from marketo_provider.results.merging import Trace
from marketo_provider.results.publishing import publish_results
from marketo_provider.results.summary import ImportSummary

__all__ = [
    "ImportSummary",
    "ResultsLocation",
    "Trace",
    "publish_results",
]
