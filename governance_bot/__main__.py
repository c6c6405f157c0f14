from governance_bot.cli import app

app()
