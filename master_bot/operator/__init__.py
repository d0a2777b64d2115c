"""The operators' Telegram bot: the fleet seen and steered from Telegram.

Only the Telegram ids in OPERATOR_IDS may use it; everyone else is refused and the attempt is
logged. Every action goes through the same business rules as the REST API (`Fleet`,
`Provisioner`) with the audit actor `operator:<telegram id>`.

Language: the texts are Russian and written directly in the code, without gettext — this is an
internal tool for the platform's (Russian-speaking) operators, with one audience and one locale.
Dialog state (/deploy) lives in aiogram's MemoryStorage: the dialog holds a bot token until it is
confirmed, and a token must not be written to Redis in clear; a master restart only drops an
unfinished dialog.
"""

from master_bot.operator.alerts import OperatorAlerter
from master_bot.operator.bot import OperatorBot

__all__ = ["OperatorAlerter", "OperatorBot"]
