"""Apache Airflow provider for Adobe Marketo Engage bulk imports."""

__version__ = "0.3.0"

__all__ = ["__version__"]
