"""`recommender serve`: the HTTP JSON API over the same library calls as the CLI, following new index versions,
and the editors' page."""
