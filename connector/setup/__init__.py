"""`dunning setup`, one job per module: the wizard's flow (`wizard`), the answers and their checks (`answers`), the
config file's connection blocks (`configfile`), the loopback listener for the platform's answer (`loopback`) and the
OAuth steps (`oauth`). What `status` shows about an authorisation lives in `connector.status`; finding the adapters
in `connector.plugins`."""

from connector.setup.configfile import token_key_of
from connector.setup.errors import SetupFailed
from connector.setup.wizard import SetupOptions, SetupResult, SetupWizard, run_setup

__all__ = ["SetupFailed", "SetupOptions", "SetupResult", "SetupWizard", "run_setup", "token_key_of"]
