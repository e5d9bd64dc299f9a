"""Oscar's checkout app with CMI as its payment step (no fork of Oscar's code needed)."""
