"""Tests of the push channel (ocppd.push)."""
