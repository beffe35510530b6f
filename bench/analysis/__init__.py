"""``odebench analyze``: what the trained forecasters learned, from their records and weights.

Light to import: the leaderboard reads analysis records through :mod:`.records`, which
needs neither torch nor the tasks. The numerics are in :mod:`.dynamics`, one record's
analysis in :mod:`.analyse`, the parallel child-process runner in :mod:`.runner`.
"""

from .records import ANALYSIS_SCHEMA, ANALYSIS_SCHEMA_VERSION, ANALYSIS_SUFFIX, REGIMES, VARIANTS, AnalysisRecordError, analysis_path, is_analysis_file, read_analyses, read_analysis, validate_analysis, write_analysis

__all__ = [
    "ANALYSIS_SCHEMA",
    "ANALYSIS_SCHEMA_VERSION",
    "ANALYSIS_SUFFIX",
    "REGIMES",
    "VARIANTS",
    "AnalysisRecordError",
    "analysis_path",
    "is_analysis_file",
    "read_analyses",
    "read_analysis",
    "validate_analysis",
    "write_analysis",
]
