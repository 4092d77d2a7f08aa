"""``python -m laser_rag_benchmarks.results_site``: rewrite the results pages."""

from laser_rag_benchmarks.results_site import main

main()
