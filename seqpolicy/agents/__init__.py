"""Agents: one reset()/act(obs, reward) protocol around every policy."""
