"""clv_platform: customer-lifetime-value prediction and dynamic segmentation on Dagster."""

__version__ = "0.1.0"
