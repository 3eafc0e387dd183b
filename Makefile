# Benchmarks: figures against baselines measured in the same run (bench/README.md).
PYTHON ?= .venv/bin/python

.PHONY: bench bench-quick bench-scale bench-reconcile bench-renewals bench-instructions

bench: $(PYTHON)        ## every figure over 100,000 orders and 10,000 entitlements (~15 min)
	$(PYTHON) bench/run.py

bench-quick: $(PYTHON)  ## the same figures over a tenth of the data, shorter runs
	$(PYTHON) bench/run.py --quick

bench-scale: $(PYTHON)  ## every figure again at 10x the data, and how each cost grows (long)
	$(PYTHON) bench/run.py --scale

bench-reconcile: $(PYTHON)  ## reconciling a day of 100,000 orders on PostgreSQL (issue #5): time and peak memory
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ipvas} $(PYTHON) bench/reconcile.py

bench-renewals: $(PYTHON)  ## the day 30,000 of 1,000,000 subscriptions renew (issue #13): renewals/s, memory per batch (~1 h)
	$(PYTHON) bench/renewals.py

bench-instructions: $(PYTHON)  ## instructions per request and per task on the hot paths, counted by callgrind (~4 min)
	$(PYTHON) bench/instructions.py

$(PYTHON):              # a clean clone: the virtualenv with the pinned requirements
	python3 dev.py setup-venv

# Reliability (issue #6): the soak versions of tests/reliability against PostgreSQL and Redis, and their figures.
.PHONY: reliability reliability-short

reliability: $(PYTHON)  ## the long runs of every reliability property and the fault campaign (issue #11), then the tables (~15–25 min, by the machine)
	$(PYTHON) bench/reliability.py

reliability-short: $(PYTHON)  ## the same tables from the short versions that the test suite runs (~6 min)
	$(PYTHON) bench/reliability.py --short
