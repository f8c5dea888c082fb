"""Screens: Setup (pick what to measure) and Run (watch it live), plus small modals."""
