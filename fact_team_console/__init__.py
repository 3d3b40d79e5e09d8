"""fact_team_console package."""
