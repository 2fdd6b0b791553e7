# The two commands people use: `make up` and `make test`. Everything is in scripts/.
.PHONY: up down test status clean fetch release install bench-monitor bench-ingest bench-api bench-notify

up: ## Start PostgreSQL, Kafka and Pingpipe in the background; returns once healthy (PINGPIPE_PROFILE=release: from dist/, built first)
	@bash scripts/up.sh

down: ## Stop everything `make up` started (data is kept)
	@bash scripts/down.sh

test: ## fmt, clippy and every test, against the real PostgreSQL and Kafka
	@bash scripts/test.sh

status: ## What is running
	@bash scripts/postgres.sh status || true
	@bash scripts/kafka.sh status || true
	@bash scripts/services.sh status || true

fetch: ## Install packages and fetch the Kafka jars, start nothing
	@bash scripts/kafka.sh fetch

release: ## Optimised binaries, the dashboard, the systemd units, an environment file and the docs in dist/
	@bash scripts/release.sh

install: ## Install dist/ (`make release`) under PREFIX=/usr/local; DESTDIR, SYSCONFDIR=/etc, SYSTEMDUNITDIR as usual
	@bash scripts/install.sh

clean: down ## Stop everything and delete all local state (.pingpipe/)
	@alt=$$(readlink .pingpipe/postgres 2>/dev/null); case "$$alt" in /var/tmp/pingpipe-postgres.*) rm -rf "$$alt";; esac
	@rm -rf .pingpipe

bench-monitor: ## Monitor benchmark (release build, needs `make up`'s PostgreSQL and Kafka): prints figures
	@bash -c 'source scripts/env.sh && cargo bench -p worker-monitor --bench monitor -- $(ARGS)'

bench-ingest: ## Ingest benchmark (release build, needs `make up`'s PostgreSQL and Kafka): prints figures
	@bash -c 'source scripts/env.sh && cargo bench -p worker-ingest --bench ingest -- $(ARGS)'

bench-api: ## API benchmark (release build, needs `make up`'s PostgreSQL): prints figures
	@bash -c 'source scripts/env.sh && cargo bench -p api --bench api -- $(ARGS)'

bench-notify: ## Notification benchmark (release build, needs `make up`'s PostgreSQL): prints figures
	@bash -c 'source scripts/env.sh && cargo bench -p worker-notify --bench notify -- $(ARGS)'
