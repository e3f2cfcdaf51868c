import streamlit as st

st.title("Connections")
