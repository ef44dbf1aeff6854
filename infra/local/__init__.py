"""The local stack: serialised moto server, resources from infra/resources.json, gateway emulation, SQS poller."""
