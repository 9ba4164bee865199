from facetwin.cli import run

run()
