"""spotfinding."""
