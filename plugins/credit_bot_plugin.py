"""CreditBot's Airflow plugin (the requests page and notebook view in the UI): see credit_bot.ui.plugin."""

from credit_bot.ui.plugin import CreditBotPlugin as CreditBotPlugin
