import streamlit as st

st.title("Prompt Studio")
