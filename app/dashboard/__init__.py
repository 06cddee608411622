"""The browser dashboard: one static page and its assets, served by the application."""
