"""Settings for every environment (dev / docker / prod); see settings/config.py."""

from ragline.settings.config import (
    PROFILES,
    RaglineSettings,
    get_settings,
    masked_settings,
    selected_profile,
)

__all__ = ["PROFILES", "RaglineSettings", "get_settings", "masked_settings", "selected_profile"]
