# Convenience aliases; each target is the same one command the README gives.
.PHONY: demo test bench install
demo:
	python3 -m pipeline.bootstrap demo
test:
	python3 -m pipeline.bootstrap test
bench:
	python3 -m pipeline.bootstrap bench
install:
	python3 -m pipeline.bootstrap install
