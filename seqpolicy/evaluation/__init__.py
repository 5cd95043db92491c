"""One evaluation loop for every agent."""
