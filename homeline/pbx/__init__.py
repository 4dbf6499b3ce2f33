"""The PBX side of the composition root: the Asterisk sandbox root, running
instances, and the configuration rendered from ``dialplans/templates``."""
from __future__ import annotations

from homeline.pbx.errors import (
    AsteriskCliError,
    AsteriskError,
    AsteriskStartError,
    PbxError,
    SandboxError,
)
from homeline.pbx.render import AgentLine, RenderError, RenderSettings, render_config, write_config

__all__ = [
    "PbxError", "SandboxError", "AsteriskError", "AsteriskStartError", "AsteriskCliError",
    "RenderError", "RenderSettings", "AgentLine", "render_config", "write_config",
]
