import streamlit as st

st.title("Projects")
