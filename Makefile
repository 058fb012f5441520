# Convenience targets; the scripts are the source of truth.
.PHONY: test demo bench fuzz cluster-up cluster-down format tidy
test:
	scripts/test
demo:
	scripts/demo
bench:
	bench/load 1000 && bench/micro && bench/report
fuzz:
	scripts/fuzz 600
cluster-up:
	scripts/cluster up --name dev
cluster-down:
	scripts/cluster down --name dev
format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i
tidy:
	git ls-files '*.cc' | grep -v '^tests/' | xargs clang-tidy -p build --quiet
