"""The studio's logic, importable and testable without Streamlit."""
