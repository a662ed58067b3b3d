"""Presentation: library values shaped for people and programs — plain JSON values, the credit
report as data, and the report rendered as HTML and PDF in Chinese and English."""
