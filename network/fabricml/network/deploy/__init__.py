"""Deploying one organization's site on real hosts: its compose file, its Helm chart, its Secrets."""
