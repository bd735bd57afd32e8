"""The web scoreboard the query API serves: national, indicator and unit pages, with no CDN."""
